with

source as (

    select * from {{ source('shop', 'users') }}

),

renamed as (

    select

        ---------- ids
        cast(user_id as bigint) as user_id,

        ---------- text
        upper(trim(country)) as country,
        lower(trim(plan)) as plan,

        ---------- timestamps
        cast(signed_up_at as timestamp) as signed_up_at

    from source

)

select * from renamed
